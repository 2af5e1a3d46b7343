"""``python -m netdoctor``: the same entry point as the ``netdoctor`` console script."""

from netdoctor.cli.app import main

if __name__ == "__main__":
    main()
