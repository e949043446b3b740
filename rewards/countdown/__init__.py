"""Countdown-4: the bundled reasoning task, its exact solver, verifier and step labeller."""
