"""Paths the export tests share (a module of its own: `conftest` is a name every test folder uses)."""

from __future__ import annotations

from pathlib import Path

from osvtest import ROOT

JDK17_HOME = Path("/usr/lib/jvm/java-17-openjdk-amd64")
JDK25_HOME = Path("/usr/lib/jvm/temurin-25-jdk-amd64")  # optional
EXAMPLES = ROOT / "examples"
