"""The fixed vocabularies of the domain. Stored as their string values; one name per idea, used everywhere."""

from enum import StrEnum


class Role(StrEnum):
    SERVICE = "service"  # enroll, identify, verify, detect
    ADMIN = "admin"  # everything, plus review, blacklist, deletions, keys and the audit trail


class AttemptKind(StrEnum):
    IDENTIFY = "identify"
    VERIFY = "verify"
    ENROLL = "enroll"  # a new face near another member's: a possible duplicate signup


class Decision(StrEnum):
    MATCH = "match"
    UNKNOWN = "unknown"  # identify: nobody near enough
    NO_MATCH = "no_match"  # verify: not the claimed member
    REVIEW = "review"  # identify: in the band between a confident match and clearly unknown; nobody named
    ENROLLED = "enrolled"  # enroll: stored, and queued as a possible duplicate


class FaceOrigin(StrEnum):
    SIGNUP = "signup"  # a photo sent to sign up or add a face (API, desk, enroll-folder)
    REVIEW = "review"  # a probe a reviewer enrolled with a verdict
    VISIT = "visit"  # a probe of a confident match, learned by itself (services.identity.learning)


class Verdict(StrEnum):
    CORRECT = "correct"
    FALSE_MATCH = "false_match"
    FALSE_NON_MATCH = "false_non_match"


class ReviewStatus(StrEnum):
    PENDING = "pending"
    CORRECT = Verdict.CORRECT.value
    FALSE_MATCH = Verdict.FALSE_MATCH.value
    FALSE_NON_MATCH = Verdict.FALSE_NON_MATCH.value


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # not yet delivered; tried again at next_attempt_at
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # every try failed, or the key's webhook was removed
