"""``python -m app.cli``: the ``fraudstream`` command line."""
from app.cli import main

if __name__ == "__main__":
    main(prog_name="fraudstream")
