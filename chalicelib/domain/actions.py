"""What a seller may do with an after-sale case, decided from its state."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from chalicelib.domain.model import GOODS_COME_BACK, CaseKind, CaseSnapshot, CaseStatus


class Action(StrEnum):
    AGREE_REFUND = "agree_refund"
    REFUSE = "refuse"
    AGREE_RETURN = "agree_return"
    CONFIRM_RETURN_RECEIVED = "confirm_return_received"


@dataclass(frozen=True)
class ReturnAddress:
    address: str
    name: str
    mobile: str
    postcode: str | None = None  # Taobao-style platforms need it to agree a return


def refusal(action: Action, case: CaseSnapshot) -> str | None:
    """Why the case's state does not allow `action`, or None if it does."""
    status = case.status
    if action is Action.REFUSE and case.quality_issue:
        return (
            "a quality problem is never a reason to refuse a return or refund "
            "(law.no_reason_return.condition)"
        )
    if status not in (CaseStatus.REQUESTED, CaseStatus.RETURNED):
        return f"the case is already {status}"
    if action is Action.AGREE_RETURN and case.kind not in GOODS_COME_BACK:
        return "this is a refund-only request: there are no goods to send back"
    if action is Action.AGREE_RETURN and status is not CaseStatus.REQUESTED:
        return "the return was already agreed"
    if action is Action.CONFIRM_RETURN_RECEIVED and status is not CaseStatus.RETURNED:
        return "the buyer has not sent the goods back yet"
    if (
        action is Action.AGREE_REFUND
        and case.kind is not CaseKind.REFUND_ONLY
        and status is not CaseStatus.RETURNED
    ):
        return "agree the return first; the refund follows once the goods are back"
    return None
