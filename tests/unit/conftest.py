"""Make the project importable as the collection agent_workstation.aw (galaxy.yml): its
module_utils are ansible_collections.agent_workstation.aw.plugins.module_utils.aw_*, as Ansible
imports them, through the link collections/ansible_collections/agent_workstation/aw."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
_COLLECTIONS = str(ROOT / "collections")
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)
