"""Workflow prompts: short recipes for the flows people ask for, written for the model to follow.

    marketplace_product_shot   cut out, white square, 2000 px JPEG under 1 MB
    portrait_blurred_background  portrait mode: the subject sharp, the background blurred
    restore_old_photo          colorize a black-and-white photo, then enhance it
    try_hairstyles             pick styles from the YouCam catalog and try them on
    product_photo_set          a set of product photos from a description

Arguments that name an image complete to recent photo://results/ and photo://uploads/ URIs; style
arguments complete from the YouCam catalog (`tools.styles`). An image left empty makes the recipe
start with pick_image, so the user can hand over their own photo.
"""

from __future__ import annotations

from typing import Annotated, get_args

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from server.icons import icon
from tools import styles
from tools.runtime import Runtime
from tools.toolkit.params import AspectRatio

RECENT = 100
ImageArg = Annotated[
    str,
    Field(
        description="The image: a path, URL, photo://results/<id> or photo://uploads/<id> (empty: ask the user "
        "for one with pick_image)"
    ),
]
IMAGE_ARGS = {"image"}
HAIR_FEATURES = ("hairstyle", "wig", "hair_extension", "bangs", "hair_volume")


def _image_step(image: str, purpose: str) -> str:
    image = image.strip()
    if image:
        return f"The image is {image}."
    return (
        f"First call pick_image(purpose={purpose!r}) so the user can hand over their photo; wait for the "
        "photo://uploads/<id> URI in their reply and use it as the image."
    )


def register(app: MCPServer) -> None:
    @app.prompt(
        name="marketplace_product_shot",
        title="Marketplace product shot",
        description="Turn a product photo into a marketplace listing image: cut out, centred on pure white, "
        "square, 2000 px, JPEG under 1 MB.",
        icons=[icon("cutout")],
    )
    def marketplace_product_shot(image: ImageArg = "", margin: str = "0.08") -> str:
        return "\n".join(
            [
                "Make a marketplace product shot (Amazon/eBay/Etsy style). " + _image_step(image, "the product"),
                "1. remove_background(image) — provider 'auto' picks a configured one (local is free).",
                f"2. place_on_background(the cut-out, background='white', aspect_ratio='1:1', size=2000, "
                f"margin={margin}, cut_out=false).",
                "3. convert_image(that result, format='jpeg', max_bytes=1000000).",
                "Show the final photo://results/<id>, say its size and file size, and mention the credits charged.",
            ]
        )

    @app.prompt(
        name="portrait_blurred_background",
        title="Portrait with a blurred background",
        description="Portrait mode: keep the person sharp and blur what is behind them (offline, free).",
        icons=[icon("face")],
    )
    def portrait_blurred_background(image: ImageArg = "", strength: str = "0.5") -> str:
        return "\n".join(
            [
                "Give this portrait a blurred background. " + _image_step(image, "the portrait"),
                f"1. blur_background(image, strength={strength}) — offline and free.",
                "2. If the user wants it stronger or softer, run it again on the original with another strength "
                "(0 = none, 1 = very strong); do not blur a blurred result.",
                "Show the result's photo://results/<id>.",
            ]
        )

    @app.prompt(
        name="restore_old_photo",
        title="Restore an old photo",
        description="Bring an old photo back: colorize a black-and-white picture, then enhance (upscale and "
        "sharpen) it.",
        icons=[icon("wand")],
    )
    def restore_old_photo(image: ImageArg = "", scale: str = "2") -> str:
        return "\n".join(
            [
                "Restore this old photo. " + _image_step(image, "the old photo"),
                "1. If it is black and white or sepia, colorize_photo(image) (YouCam; say the credit cost first).",
                f"2. enhance_photo(the colorized result, or the original if it was in colour, scale={scale}).",
                "3. If scratches or spots remain, offer remove_object with boxes around them.",
                "Show before and after: the input and the final photo://results/<id>.",
            ]
        )

    @app.prompt(
        name="try_hairstyles",
        title="Try hairstyles",
        description="Try hairstyles from the YouCam catalog on a portrait, and compare them.",
        icons=[icon("hair")],
    )
    def try_hairstyles(
        image: ImageArg = "",
        feature: Annotated[str, Field(description=f"One of {', '.join(HAIR_FEATURES)}")] = "hairstyle",
        style_group_id: Annotated[str, Field(description="A style group id (empty: browse the groups)")] = "",
        count: str = "3",
    ) -> str:
        group = style_group_id.strip()
        browse = (
            f"1. list_styles(feature={feature!r}, style_group_id={group}) and pick {count} styles that suit the "
            "user's request."
            if group
            else f"1. list_style_groups(feature={feature!r}), choose a group with the user, then list_styles for "
            f"it and pick {count} styles."
        )
        return "\n".join(
            [
                "Try hairstyles on this portrait. " + _image_step(image, "your portrait"),
                browse,
                f"2. For each style: try_hairstyle(image, style_id=<id>, kind={feature!r}, style_group_id=<group>) "
                "(YouCam; say the credit cost before starting).",
                "3. Show every result with the style's name, then ask which one to keep.",
            ]
        )

    @app.prompt(
        name="product_photo_set",
        title="Product photo set",
        description="A set of product photos from a text description: variants, then a consistent finish.",
        icons=[icon("sparkle")],
    )
    def product_photo_set(
        description: Annotated[str, Field(description="What the product is and the look wanted")],
        aspect_ratio: Annotated[str, Field(description="e.g. 1:1, 4:5, 16:9")] = "1:1",
        variants: str = "4",
    ) -> str:
        return "\n".join(
            [
                f"Create a set of product photos of: {description.strip() or 'the product the user describes'}.",
                f"1. generate_product_photo(prompt=<a vivid description>, aspect_ratio={aspect_ratio!r}, "
                f"variants={variants}) (Aluo; say the credit cost first).",
                "2. Show the variants and let the user choose (the viewer's 'Use this one' names the result).",
                "3. Offer follow-ups on the chosen one: generate_background for other scenes, place_on_background "
                "for a plain backdrop, resize_image or convert_image for each marketplace's size.",
            ]
        )


async def complete_argument(
    runtime: Runtime, prompt: str, name: str, value: str, context: dict[str, str] | None
) -> list[str] | None:
    """Completions for a prompt's argument (None: nothing to offer)."""
    if name in IMAGE_ARGS:
        records = await runtime.store.recent(RECENT)
        return [r.uri for r in records if r.uri.startswith(value) or r.id.startswith(value)]
    if name == "aspect_ratio":
        return [r for r in get_args(AspectRatio) if r.startswith(value)]
    if prompt == "try_hairstyles" and name == "feature":
        return [f for f in HAIR_FEATURES if f.startswith(value)]
    if name in ("style_group_id", "style_id"):
        return await styles.complete_style_argument(runtime, name, value, context)
    return None
