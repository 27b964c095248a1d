#!/bin/sh
# The add-on's entrypoint: the agent's configuration from the add-on's options
# (/data/options.json → /data/agent.yaml, agent/device/addon.ts), then the agent in the
# foreground. Bad options stop here, with the option named, before anything is written.
# VOUCH_ADDON_PREFIX puts /data, /config and /run under another directory (the tests).
set -eu
prefix="${VOUCH_ADDON_PREFIX:-}"
vouch config addon --prefix "${prefix:-/}"
exec vouch agent --config "$prefix/data/agent.yaml"
