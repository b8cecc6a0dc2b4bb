"""What a simulated class does and how its actions are summed up (no Locust here: importing Locust patches the
importing process with gevent, so serving.classroom_load, its runner, is run as a process of its own).

The round: a student opens the app, uploads a photo of its own through `/_stcore/upload_file` (the rerun that
reads it is timed too), then visits Classify, Feature maps, Attributions (Saliency) and Information flow in turn,
thinking between visits. Every action is one script run, timed from its rerun request to its `script_finished` message.

The gallery: a student joins a room by its code, accepts the notice, sends one photo of its own (student_photo)
and stays silent while the class goes on.
"""

from __future__ import annotations

import io
import random
import statistics
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = sorted((ROOT / "samples").glob("*.jpg"))
UPLOAD_KEY = "lens_upload"  # the sidebar's uploader (ui.state.UPLOAD_KEY)
# The round each student walks, as (action, page, query string): Attributions with Saliency, one gradient per
# model (the heavy methods wait for their turn, and a class does not all press them at once).
VISITS = (("classify", "classify", ""), ("feature_maps", "feature_maps", ""),
          ("attributions", "attributions", "method=Saliency&groups=false"),
          ("information_flow", "information_flow", ""))
FIRST_ACTIONS = ("open", "upload")
THINK_S = (2.0, 6.0)  # seconds a student looks at a page before the next action
ACTION_TIMEOUT_S = 120.0

# The gallery scenario, as ui/gallery.py shows it to a student who joins with `?code=<room code>`.
GALLERY_PAGE = "gallery"
GALLERY_NOTICE = "Avoid faces"
GALLERY_NOTICE_OK_KEY = "gallery_notice_ok"
GALLERY_UPLOAD_KEY = "gallery_upload_0"  # the uploader of a student who has sent nothing yet
GALLERY_SENT = "Sent. It is on the projector now."


def student_photo(index: int) -> bytes:
    """A different photo per student: a sample, mirrored or not, cropped at random (seeded by `index`)."""
    generator = random.Random(index)
    image = Image.open(PHOTOS[index % len(PHOTOS)]).convert("RGB")
    if generator.random() < 0.5:
        image = ImageOps.mirror(image)
    width, height = image.size
    left, top = generator.randint(0, width // 5), generator.randint(0, height // 5)
    image = image.crop((left, top, left + width * 4 // 5, top + height * 4 // 5))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def percentile(values: list[float], share: float) -> float:
    """The `share` quantile (0.95: p95) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def summarize(records: list[dict], seconds: float, users: int) -> dict:
    """Per action kind: count, failures, p50 and p95 seconds; overall: actions per second, errors, and how many
    actions never saw their `script_finished`. A record: {"kind", "seconds", "finished", "error"}."""
    kinds = {}
    for kind in dict.fromkeys(record["kind"] for record in records):
        times = [record["seconds"] for record in records if record["kind"] == kind]
        kinds[kind] = {"count": len(times), "failures": sum(1 for r in records if r["kind"] == kind and r["error"]),
                       "p50_s": percentile(times, 0.5), "p95_s": percentile(times, 0.95), "max_s": max(times)}
    return {"users": users, "seconds": seconds, "actions": len(records),
            "actions_per_s": len(records) / seconds if seconds else 0.0,
            "errors": sum(1 for record in records if record["error"]),
            "unfinished": sum(1 for record in records if not record["finished"]),
            "error_samples": sorted({record["error"] for record in records if record["error"]})[:5],
            "kinds": kinds}
