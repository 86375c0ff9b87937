"""Named reads and writes of people's reviews: the `reviews` rows (facts, appended and never
edited) and where they leave each clip (`clip_reviews`). The verdict and text they give reach
every stage through `clip_views` and the `clip_verdicts` view."""

from __future__ import annotations

from .records import ClipReview, Review

_REVIEW_COLUMNS = ("speaker", "clip_id", "action", "status", "reasons", "note", "before", "after", "machine_status",
                   "machine_reasons", "undoes", "reviewer", "source")


def _review(r: dict) -> Review:
    return Review(r["speaker"], r["clip_id"], r["action"], r["reviewer"], r["status"], tuple(r["reasons"] or ()),
                  r["note"], r["before"], r["after"], r["machine_status"], tuple(r["machine_reasons"] or ()),
                  r["undoes"], r["source"] or "", r["review_id"], r["made_at"])


def clip_review(r: dict, prefix: str = "") -> ClipReview:
    """A `clip_reviews` row, from the columns named with `prefix` (`clip_views` selects them as `review_*`)."""
    g = {k[len(prefix):]: v for k, v in r.items() if k.startswith(prefix)}
    return ClipReview(g["clip_id"], int(g["version"]), g["status"], tuple(g["reasons"] or ()), g["note"], g["status_by"],
                      g["status_at"], g["machine_status"], tuple(g["machine_reasons"] or ()), g["text"], g["text_by"],
                      g["text_at"])


class ReviewTables:
    def add_review(self, r: Review) -> int:
        """Append one review; its id."""
        values = [getattr(r, c) for c in _REVIEW_COLUMNS]
        values = [list(v) if isinstance(v, tuple) else v for v in values]
        return int(self.con.execute(
            f"INSERT INTO reviews ({', '.join(_REVIEW_COLUMNS)}) VALUES ({', '.join('?' * len(values))}) RETURNING review_id",
            values).fetchone()[0])

    def reviews(self, speaker: str | None = None, clip_id: str | None = None) -> list[Review]:
        """Review rows, oldest first, of a speaker, of a clip, or all."""
        return [_review(r) for r in self._rows(
            "SELECT * FROM reviews WHERE (? IS NULL OR speaker = ?) AND (? IS NULL OR clip_id = ?) ORDER BY review_id",
            [speaker, speaker, clip_id, clip_id])]

    def undone_reviews(self) -> set[int]:
        """Ids of the reviews an undo took back."""
        return {r for (r,) in self.con.execute("SELECT undoes FROM reviews WHERE action = 'undo' AND undoes IS NOT NULL").fetchall()}

    def last_live_review(self, clip_id: str) -> Review | None:
        """The clip's newest review that is not an undo and was not taken back (what undo takes back)."""
        rows = self._rows(
            """SELECT * FROM reviews WHERE clip_id = ? AND action <> 'undo'
               AND review_id NOT IN (SELECT undoes FROM reviews WHERE action = 'undo' AND undoes IS NOT NULL)
               ORDER BY review_id DESC LIMIT 1""", [clip_id])
        return _review(rows[0]) if rows else None

    def clip_reviews(self, clip_ids: list[str]) -> dict[str, ClipReview]:
        return {r["clip_id"]: clip_review(r) for r in self._rows(
            "SELECT * FROM clip_reviews WHERE list_contains(?, clip_id)", [clip_ids])}

    def reference_pick(self, speaker: str) -> Review | None:
        """The speaker's newest reference pick still standing."""
        rows = self._rows(
            """SELECT * FROM reviews WHERE speaker = ? AND action = 'reference'
               AND review_id NOT IN (SELECT undoes FROM reviews WHERE action = 'undo' AND undoes IS NOT NULL)
               ORDER BY review_id DESC LIMIT 1""", [speaker])
        return _review(rows[0]) if rows else None

    def review_counts(self) -> dict[str, dict[str, int]]:
        """Per speaker: clips a person reviewed; of those, overruled (a person's verdict differing
        from the rules'); and acts, the review rows (any review changes it)."""
        acts = {r["speaker"]: r["n"] for r in self._rows("SELECT speaker, count(*) AS n FROM reviews GROUP BY speaker")}
        return {r["speaker"]: {"reviewed": r["reviewed"], "overruled": r["overruled"], "acts": acts.get(r["speaker"], 0)}
                for r in self._rows(
            """SELECT speaker, count(*) FILTER (WHERE reviewed_by IS NOT NULL OR text_source = 'reviewed') AS reviewed,
                      count(*) FILTER (WHERE reviewed_by IS NOT NULL AND status IS DISTINCT FROM machine_status) AS overruled
               FROM clip_verdicts GROUP BY speaker""")}
