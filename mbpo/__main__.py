import sys

try:
    from mbpo.cli import main
except KeyboardInterrupt:  # Ctrl-C while torch and gymnasium import
    print("python -m mbpo: interrupted while starting; nothing was written", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
