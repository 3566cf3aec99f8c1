"""A small typed Python client for FaceGate's v1 API (needs only httpx): members, faces, identify, verify,
detect, review and the blacklist. See the README's "Integrating" section."""

from facegate_client.client import DEFAULT_URL, FaceGate, FaceGateAPIError, NewMember, Photo

__all__ = ["DEFAULT_URL", "FaceGate", "FaceGateAPIError", "NewMember", "Photo"]
