"""MSR-VTT in the CLIP4Clip layout: two test protocols over ``videos/all/<video_id>.mp4``.

* ``1k-A`` (JSFusion): ``MSRVTT_JSFUSION_test.csv``, 1,000 videos with one caption each.
* ``full`` (the official test split, 2,990 videos, what CoCa reports): the videos of
  ``MSRVTT_data.json`` whose ``split`` is ``test``, each with all its captions
  (text-to-video counts every caption as a query; video-to-text ranks the best one).
"""

from __future__ import annotations

from pathlib import Path

from coca_bench.data.annotations import AnnotationFile, AnnotationFormatError, require_dataset_dir
from coca_bench.data.records import CaptionSet, VideoCaptions

MSRVTT_SPLITS = ("1k-A", "full")
JSFUSION_FILE = "MSRVTT_JSFUSION_test.csv"
DATA_FILE = "MSRVTT_data.json"
VIDEO_DIR = "videos/all"


def read_msrvtt(root: Path, split: str = "1k-A", video_suffix: str = ".mp4") -> CaptionSet[VideoCaptions]:
    """Test videos of the chosen protocol with their captions, in annotation-file order."""
    if split not in MSRVTT_SPLITS:
        raise ValueError(f"Unknown MSR-VTT split {split!r}; use one of {list(MSRVTT_SPLITS)}.")
    root = require_dataset_dir(Path(root), f"the CLIP4Clip MSR-VTT layout ({JSFUSION_FILE}, {DATA_FILE}, {VIDEO_DIR}/)")

    def video_path(source: AnnotationFile, video_id: str, where: str) -> Path:
        return source.media_path(root / VIDEO_DIR, f"{video_id}{video_suffix}", f"{where} video_id")

    if split == "1k-A":
        source = AnnotationFile(
            root / JSFUSION_FILE, "the JSFusion 1k-A csv with columns key,vid_key,video_id,sentence"
        )
        source.require_exists(f"CLIP4Clip's {JSFUSION_FILE} in {root}")
        items = []
        seen: set[str] = set()
        for line_number, row in enumerate(source.read_csv(["video_id", "sentence"]), start=2):
            video_id = row["video_id"].strip()
            if not video_id:
                raise source.error(f"line {line_number} has an empty video_id")
            if video_id in seen:
                raise source.error(f"line {line_number} repeats video_id {video_id!r}; 1k-A has one caption per video")
            seen.add(video_id)
            sentence = row["sentence"].strip()
            if not sentence:
                raise source.error(f"line {line_number} has an empty sentence")
            path = video_path(source, video_id, f"line {line_number}")
            items.append(VideoCaptions(id=video_id, path=path, captions=(sentence,)))
        return CaptionSet(items=tuple(items), split=split, annotation_files=(source.path,))

    source = AnnotationFile(root / DATA_FILE, "the MSR-VTT videodatainfo format (videos, sentences)")
    source.require_exists(f"CLIP4Clip's {DATA_FILE} in {root}")
    payload = source.load_json()
    test_ids: list[str] = []
    paths: dict[str, Path] = {}
    first_of: dict[str, int] = {}  # video id -> index in 'videos', for duplicates
    for index, video in enumerate(source.objects(payload, "videos")):
        where = f"videos[{index}]"
        video_id = source.field(video, "video_id", where, str)
        if video_id in first_of:
            raise source.error(f"{where} repeats the video_id {video_id!r} of videos[{first_of[video_id]}]")
        first_of[video_id] = index
        if source.field(video, "split", where, str) == "test":
            test_ids.append(video_id)
            paths[video_id] = video_path(source, video_id, where)
    if not test_ids:
        raise AnnotationFormatError(
            f"{source.path} lists no videos with split 'test'; the full test split needs the complete MSR-VTT "
            f"annotations (train_val and test videodatainfo merged, as CLIP4Clip's {DATA_FILE})."
        )
    captions: dict[str, list[str]] = {video_id: [] for video_id in test_ids}
    for index, sentence in enumerate(source.objects(payload, "sentences")):
        where = f"sentences[{index}]"
        video_id = source.field(sentence, "video_id", where, str)
        if video_id in captions:
            captions[video_id].append(source.text(sentence, "caption", where))
    uncaptioned = [video_id for video_id, texts in captions.items() if not texts]
    if uncaptioned:
        raise source.error(f"test video(s) {uncaptioned[:5]} have no entry in 'sentences'")
    items = [VideoCaptions(id=v, path=paths[v], captions=tuple(captions[v])) for v in test_ids]
    return CaptionSet(items=tuple(items), split=split, annotation_files=(source.path,))


__all__ = ["MSRVTT_SPLITS", "read_msrvtt"]
