"""Byte formats osv-java writes and reads (cpio, EROFS, tiny ELF programs): no project imports."""
