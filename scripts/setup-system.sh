#!/usr/bin/env bash
# System packages clonebench needs: ffmpeg/sox for audio, espeak-ng and Debian's Asterisk
# prompts (real English and French speech, music on hold) for the demo and the tests;
# chromium + chromium-driver: the HTML report tests drive the system browser (no browser download).
#
# --voices also installs the speech synthesizers behind the multilingual material of
# testing/voices.py (MBROLA voices, Festival voices, SVOX Pico), which the scene classifier is
# trained on and bench_screens.py scores: only scripts/train_scene_classifier.py and the
# benchmarks need them, never the tests. MBROLA and Pico are in Debian's contrib and non-free
# components, which this adds to apt's sources.
set -euo pipefail
VOICES="festival festvox-italp16k festvox-itapc16k festvox-ru festvox-czech-dita festvox-czech-machac festvox-suopuhe-lj festvox-suopuhe-mv festvox-ca-ona-hts festvox-us-slt-hts festvox-kallpc16k mbrola libttspico-utils"
for v in af1 br1 br4 cr1 cz2 de1 de2 de6 ee1 es1 es3 fr1 fr4 gr2 hu1 id1 in1 in2 it3 it4 jp2 lt1 mx2 nl2 nl3 pl1 pt1 ro1 sw1 sw2 tr1 tr2 us1 us3 vz1; do
  VOICES="$VOICES mbrola-$v"
done
PKGS="ffmpeg sox espeak-ng chromium chromium-driver asterisk-core-sounds-en asterisk-core-sounds-en-g722 asterisk-core-sounds-fr asterisk-core-sounds-fr-g722 asterisk-moh-opsound-wav"
if [ "${1:-}" = "--voices" ]; then
  PKGS="$PKGS $VOICES"
  if [ "$(id -u)" = "0" ] && ! apt-cache policy mbrola 2>/dev/null | grep -q "Candidate: [0-9]"; then
    . /etc/os-release
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$VERSION_CODENAME" > /etc/apt/sources.list.d/clonebench-voices.sources
  fi
fi
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
