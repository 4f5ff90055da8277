"""Development-only support for tenant-worker; never part of the wheel or the Docker image."""
