"""`python -m analyzer.cli` runs the civicpulse command line."""

from analyzer.cli import main

if __name__ == "__main__":
    main()
