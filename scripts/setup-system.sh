#!/usr/bin/env bash
# System packages clonebench needs: ffmpeg/sox for audio, espeak-ng and Debian's Asterisk
# prompts (real English and French speech, music on hold) for the demo and the tests;
# chromium + chromium-driver: the HTML report tests drive the system browser (no browser download).
set -euo pipefail
PKGS="ffmpeg sox espeak-ng chromium chromium-driver asterisk-core-sounds-en asterisk-core-sounds-en-g722 asterisk-core-sounds-fr asterisk-core-sounds-fr-g722 asterisk-moh-opsound-wav"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ]; then
  echo "installing system packages:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq $missing >/dev/null
else
  echo "clonebench needs these Debian packages:$missing" >&2
  echo "run as root:  apt-get install -y$missing   (or: sudo make setup)" >&2
  exit 1
fi
