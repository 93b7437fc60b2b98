"""What the assistant can call, and everything behind it.

The catalogue below lists the modules that hold tools (plain module-level async functions
marked with `toolkit.declare.tool`); the server registers them in this order. Behind them:

    toolkit/    declaring a tool, parameter types, running a call as a job, rendering the output
    runtime     opens everything once per process; saves provider output; resumes jobs
    providers/  one folder per provider (aluo, youcam, removedo, local), the registry, routing
    core/       settings, errors, database, jobs, ledger, results, image refs, safe fetch, Pillow

Nothing under `tools` imports `mcp.server`: the MCP adapter is `server/`.
"""

CATALOGUE = (
    "tools.background",  # remove_background
    "tools.edit",  # edit_photo
    "tools.generate",  # generate_product_photo, generate_background, generate_image
    "tools.hair",  # try_hairstyle
    "tools.face",  # simulate_aging, transfer_makeup
    "tools.restore",  # remove_object, colorize_photo, enhance_photo
    "tools.styles",  # list_style_groups, list_styles
    "tools.local",  # place_on_background, resize_image, crop_image, convert_image, blur_background, correct_colors
    "tools.account",  # check_credits
    "tools.jobs",  # get_job, cancel_job
)
