"""Pure domain: no I/O, standard library only, so the rules are testable with nothing running."""
