"""The Casbin model and default policy; `policies.enforcer` is the only module that runs Casbin."""

from pathlib import Path

POLICY_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = POLICY_DIR / "model.conf"
DEFAULT_POLICY = POLICY_DIR / "policy.csv"
