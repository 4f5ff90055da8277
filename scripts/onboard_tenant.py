"""Onboard a tenant from a TOML/YAML definition: the same code as `tenant-worker tenant onboard`.

python scripts/onboard_tenant.py acme.toml [--customers customers.csv] [--region NL] [--dry-run]
"""

import sys

from tenant_worker.cli import main

if __name__ == "__main__":
    sys.exit(main(["tenant", "onboard", *sys.argv[1:]]))
