"""The osv-java command line and the commands that compose kernel, gc_hooks and jvmbridge."""
