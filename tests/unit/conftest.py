"""Make the project's module_utils importable as ansible.module_utils.aw_* (as Ansible does)."""

from pathlib import Path

import ansible.module_utils

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
_UTILS = str(ROOT / "plugins" / "module_utils")
if _UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_UTILS)
