"""The tamper-evident audit trail: typed events, hash-chained per organisation, verifiable and exportable."""

from appliance.audit.chain import VerifyResult, record, record_alone, verify
from appliance.audit.events import Context

__all__ = ["Context", "VerifyResult", "record", "record_alone", "verify"]
