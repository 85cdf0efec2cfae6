"""Real parts for the tests and the benchmarks: a JACK server on its dummy backend, JACK peers
in subprocesses, and played sequences of Debian's samples.

Not shipped and not a layer of the app: tests and bench import it, it imports app and engine
where it drives them, and never pytest (tests/jack_fixtures.py holds the fixtures).
"""
