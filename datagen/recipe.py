"""The sample recipe, chosen once from the build config: an image (``ImageRecipe``: aif, bokeh, lq, disp, json)
or a clip (``ClipRecipe``: the same per frame, optional flow, one json), when ``sequence.frames`` is set. A recipe
owns what differs between the two: how a drawn scene becomes a sample, its members and their encoding and
decoding, its manifest columns and schema, and what the build says about reading and previewing it. The build
(datagen/build.py) calls the recipe and never asks which one it holds.

    recipe = recipe_for(cfg)
    sample = recipe.make(spec, assets_by_id, degradation, highlights, camera)
    members = recipe.encode(sample)            # member name -> bytes
    row = {..., **recipe.columns(sample), **member_columns(members, recipe.members())}
"""

from __future__ import annotations


class ImageRecipe:
    """One rendered scene per sample (datagen.scenes.make_sample)."""

    kind = "image"
    preview_rows = "rows: LQ, all-in-focus, disparity, defocus map, bokeh"
    reader = ""  # what to read it with beyond webdataset (a clip names decode_clip)

    def __init__(self, cfg):
        self.cfg = cfg

    def make(self, spec, by_id: dict, deg, boost, camera) -> dict:
        from datagen.character import draw_character
        from datagen.scenes import make_sample

        c = self.cfg
        lens = draw_character(spec, c.lens) if c.lens.enabled else None
        return make_sample(spec, by_id, deg, boost, c.bit_depth, camera=camera, lens=lens, **c.render)

    def encode(self, sample: dict) -> dict[str, bytes]:
        from datagen.shards import encode_sample

        return encode_sample(sample, self.cfg.png_compress_level)

    @staticmethod
    def decode(sample: dict) -> dict:
        from datagen.shards import decode_sample

        return decode_sample(sample)

    @staticmethod
    def images(sample: dict):
        """The raw (undecoded) image samples a stored sample holds, for readers that train on images: itself."""
        yield sample

    def focus(self, sample: dict) -> dict:
        """{"target", "xy", "disparity"} the manifest records."""
        return sample["json"]["focus"]

    def columns(self, sample: dict) -> dict:
        """The manifest columns of this kind of sample beyond the scene's, the focus and the camera's: its lens
        character's, where the build draws one."""
        from datagen.character import lens_columns

        return lens_columns(sample["json"]["lens"]) if "lens" in sample["json"] else {}

    def members(self) -> tuple[str, ...] | list[str]:
        from manifests.schemas import member_names

        return member_names()

    def schema(self):
        from manifests import samples_schema

        c = self.cfg
        return samples_schema(c.scene.num_foregrounds, c.camera.enabled, lens=c.lens.enabled)


class ClipRecipe(ImageRecipe):
    """One clip per sample (datagen.clips: motion and focus drawn per clip, every frame rendered exactly)."""

    kind = "clip"
    preview_rows = (
        "per clip: bokeh frames above all-in-focus ones (and their flow); the first clip plays in preview.gif"
    )
    reader = " and datagen.shards.decode_clip"

    def make(self, spec, by_id: dict, deg, boost, camera) -> dict:
        from datagen.character import draw_character
        from datagen.clips import draw_clip, make_clip

        c = self.cfg
        clip = draw_clip(spec, c.sequence, c.scene.targets()[0])
        lens = draw_character(spec, c.lens) if c.lens.enabled else None
        return make_clip(
            spec,
            by_id,
            clip,
            deg,
            boost,
            c.bit_depth,
            c.scene.fg_margin,
            c.sequence.flow,
            camera=camera,
            lens=lens,
            **c.render,
        )

    def encode(self, sample: dict) -> dict[str, bytes]:
        from datagen.shards import encode_clip

        return encode_clip(sample, self.cfg.png_compress_level)

    @staticmethod
    def decode(sample: dict) -> dict:
        from datagen.shards import decode_clip

        return decode_clip(sample)

    @staticmethod
    def images(sample: dict):
        """Its frames, each an image sample with the frame's own K and focus (datagen.shards.clip_frames)."""
        from datagen.shards import clip_frames

        yield from clip_frames(sample)

    def focus(self, sample: dict) -> dict:
        first = sample["json"]["frames"][0]  # a clip's row records its first frame's focus
        return {"target": first["target"], "xy": first["xy"], "disparity": first["focus_disparity"]}

    def columns(self, sample: dict) -> dict:
        from datagen.clips import clip_columns

        return {**super().columns(sample), **clip_columns(sample["json"])}

    def members(self) -> list[str]:
        from manifests.schemas import member_names

        return member_names(self.cfg.sequence.frames, self.cfg.sequence.flow)

    def schema(self):
        from manifests import samples_schema

        c = self.cfg
        return samples_schema(
            c.scene.num_foregrounds, c.camera.enabled, c.sequence.frames, c.sequence.flow, lens=c.lens.enabled
        )


def recipe_for(cfg) -> ImageRecipe:
    """The build config's recipe: clips when ``sequence.frames`` is set, else images."""
    return ClipRecipe(cfg) if cfg.sequence.frames else ImageRecipe(cfg)


__all__ = ["ClipRecipe", "ImageRecipe", "recipe_for"]
