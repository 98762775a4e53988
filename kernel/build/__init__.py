"""The image: the app and its runtimes, the jlinked JRE, the ELF closure, the guest's programs, assembly."""
