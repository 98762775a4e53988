"""`python -m osv_java`: the same command line as the `osv-java` script, without needing it on PATH."""

from osv_java.cli import main

if __name__ == "__main__":
    main()
