"""Clients written for CompreFace, measured against FaceGate: the real compreface-sdk against a running service
(embedded Postgres in a temporary folder), as Double Take and Viseron use it. Per set of LFW people (none of them
in tests/api/test_compat_clients.py): three accepted photos each are added as examples of a subject, a later photo
of each is recognised; strangers (people in no set) are recognised against the same gallery. Reports how many
members come back named at similarity >= 0.60 (Double Take's match line), in 0.40-0.60 (its unknown line: FaceGate's
review band), below 0.40, or named as someone else, and how the strangers' best similarities fall. After each set
its subjects are erased, so every set starts from an empty gallery.

Run (compreface-sdk needs urllib3<2, the dev extra):
    FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.compat_clients [--sets 3] [--people 20]
        [--strangers 60]
"""

import argparse
import json
import random
import statistics
import tempfile
from pathlib import Path

import httpx
from compreface import CompreFace

from bench.run import free_port, running_service
from services.identity.auth import ADMIN_KEY_FILE
from tests.api.test_compat_clients import PEOPLE, STRANGERS, subject_face
from tests.support import LFW_IMAGES

SEED = 20261206


def photos(person: str) -> list[Path]:
    return sorted((LFW_IMAGES / person).glob("*.jpg"))


def choose(sets: int, per_set: int, strangers: int) -> tuple[list[list[str]], list[str]]:
    """Disjoint sets of people with at least 5 photos, and strangers from everyone else; none from the tests."""
    taken = set(PEOPLE) | set(STRANGERS)
    everyone = sorted(d.name for d in LFW_IMAGES.iterdir() if d.name not in taken)
    rng = random.Random(SEED)
    eligible = [p for p in everyone if len(photos(p)) >= 5]
    rng.shuffle(eligible)
    groups = [sorted(eligible[i * per_set : (i + 1) * per_set]) for i in range(sets)]
    used = {p for g in groups for p in g}
    others = [p for p in everyone if p not in used]
    rng.shuffle(others)
    return groups, sorted(others[:strangers])


def best_similarity(recognition, path: Path) -> tuple[str | None, float, str]:
    answer = recognition.recognize(str(path))
    if "result" not in answer:
        return None, 0.0, f"code {answer.get('code')}"
    face = subject_face(answer["result"])
    best = face["subjects"][0] if face["subjects"] else {"subject": None, "similarity": 0.0}
    return best["subject"], best["similarity"], face["facegate"]["decision"]


def measure_set(recognition, admin_recognition, people: list[str], strangers: list[str]) -> dict:
    collection = recognition.get_face_collection()
    probes, refused = {}, 0
    for person in people:
        added, remaining = 0, iter(photos(person))
        for path in remaining:
            if "image_id" in collection.add(image_path=str(path), subject=person):
                added += 1
                if added == 3:
                    break
            else:
                refused += 1
        probe = next(remaining, None)
        if added == 3 and probe is not None:
            probes[person] = probe
    outcomes = {"named": 0, "review_band": 0, "below_040": 0, "named_as_someone_else": 0}
    member_similarities = []
    for person, probe in probes.items():
        subject, similarity, _ = best_similarity(recognition, probe)
        member_similarities.append(similarity)
        if similarity >= 0.60:
            outcomes["named" if subject == person else "named_as_someone_else"] += 1
        elif similarity >= 0.40:
            outcomes["review_band"] += 1
        else:
            outcomes["below_040"] += 1
    stranger_similarities = [best_similarity(recognition, photos(s)[0])[1] for s in strangers]
    subjects = admin_recognition.get_subjects()
    for person in people:
        subjects.delete(person)
    return {
        "members_probed": len(probes),
        "examples_refused": refused,
        **outcomes,
        "member_similarity_median": round(statistics.median(member_similarities), 3),
        "strangers": len(stranger_similarities),
        "strangers_at_060_or_more": sum(s >= 0.60 for s in stranger_similarities),
        "strangers_in_040_060": sum(0.40 <= s < 0.60 for s in stranger_similarities),
        "stranger_similarity_median": round(statistics.median(stranger_similarities), 3),
        "stranger_similarity_max": round(max(stranger_similarities), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=int, default=3)
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--strangers", type=int, default=60)
    args = parser.parse_args()
    groups, strangers = choose(args.sets, args.people, args.strangers)
    with tempfile.TemporaryDirectory(prefix="facegate-compat-") as folder:
        data_dir, port = Path(folder), free_port()
        with running_service(data_dir, port) as (base, _):
            admin_key = (data_dir / ADMIN_KEY_FILE).read_text().strip()
            created = httpx.post(
                f"{base}/v1/keys", json={"name": "bench", "role": "service"}, headers={"X-API-Key": admin_key}
            )
            created.raise_for_status()
            client = CompreFace(domain="http://127.0.0.1", port=str(port))
            recognition = client.init_face_recognition(created.json()["key"])
            admin_recognition = client.init_face_recognition(admin_key)
            results = [
                {"people": group, **measure_set(recognition, admin_recognition, group, strangers)} for group in groups
            ]
    print(json.dumps({"strangers": strangers, "sets": results}, indent=2))


if __name__ == "__main__":
    main()
