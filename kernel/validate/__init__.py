"""Checks of apps and images before they boot (ELF objects, jars, kernel config), as findings."""
