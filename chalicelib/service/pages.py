"""The few HTML pages a seller sees (shop connect): small, self-contained, escaped."""

from __future__ import annotations

from html import escape

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · ShopHook</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f6f7f9; margin: 0; }}
main {{ max-width: 32rem; margin: 12vh auto; background: #fff; border-radius: 12px;
       padding: 2rem 2.25rem; box-shadow: 0 1px 4px rgba(0,0,0,.08); }}
h1 {{ font-size: 1.35rem; margin: 0 0 .75rem; color: {colour}; }}
p {{ line-height: 1.5; color: #333; }}
dl {{ display: grid; grid-template-columns: max-content 1fr; gap: .4rem 1rem; }}
dt {{ color: #666; }} dd {{ margin: 0; font-weight: 600; }}
</style></head>
<body><main><h1>{title}</h1><p>{message}</p>{details}</main></body></html>
"""


def page(title: str, message: str, ok: bool, details: dict[str, str] | None = None) -> str:
    rows = "".join(
        f"<dt>{escape(name)}</dt><dd>{escape(value)}</dd>"
        for name, value in (details or {}).items()
    )
    return _PAGE.format(
        title=escape(title),
        message=escape(message),
        colour="#1a7f37" if ok else "#b42318",
        details=f"<dl>{rows}</dl>" if rows else "",
    )
