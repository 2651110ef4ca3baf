"""The echo-back service: `protocol` (the HTTP + JSON contract, pure), `limits` (token bucket,
cap on dial-backs), `dialback` (the DICOM association back), `app` (the aiohttp routes),
`server` (configuration and serving), `client` (what `check` uses to ask a reflector)."""
