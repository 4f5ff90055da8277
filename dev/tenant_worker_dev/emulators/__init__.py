"""Local HTTP stand-ins for MessageBird and Sentry, used by the tests, the demo and the benchmarks."""
