"""The fixed vocabularies of the domain. Stored as their string values; one name per idea, used everywhere."""

from enum import StrEnum


class Role(StrEnum):
    SERVICE = "service"  # enroll, identify, verify, detect
    ADMIN = "admin"  # everything, plus review, blacklist, deletions, keys and the audit trail


class AttemptKind(StrEnum):
    IDENTIFY = "identify"
    VERIFY = "verify"


class Decision(StrEnum):
    MATCH = "match"
    UNKNOWN = "unknown"  # identify: nobody near enough
    NO_MATCH = "no_match"  # verify: not the claimed member


class Verdict(StrEnum):
    CORRECT = "correct"
    FALSE_MATCH = "false_match"
    FALSE_NON_MATCH = "false_non_match"


class ReviewStatus(StrEnum):
    PENDING = "pending"
    CORRECT = Verdict.CORRECT.value
    FALSE_MATCH = Verdict.FALSE_MATCH.value
    FALSE_NON_MATCH = Verdict.FALSE_NON_MATCH.value
