"""The real compatibility matrix: every language example on JDK 17 (and 25 where installed) on the host and
in VMs, the third-party programs, and a broken example that must show up red with its reason.

Each matrix is one `osv-java compat` run (cells in parallel, like a user or CI runs it); the tests below
are one per cell so a failure names its cell and carries compat's own explanation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import ROOT, Matrix, compat_argv, run_compat

from kernel import image, launch_probe_free  # noqa: F401  (replaced below)
