#!/usr/bin/env bash
# Fills the placeholders (@@NAME@@) of a QKS cloud-init user-data file and prints the result:
#   fill.sh TEMPLATE NAME=VALUE ... NAME=@FILE ...      (NAME=@FILE: FILE's contents in base64)
# Refuses (exit 2) a NAME the template lacks or a value with a quote, a backslash or a line break
# (it would break the YAML or the JSON inside); refuses (exit 1) to print a file with a placeholder left.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: fill.sh TEMPLATE NAME=VALUE|NAME=@FILE ..." >&2
  exit 2
fi
text=$(cat "$1")
shift
for pair in "$@"; do
  name=${pair%%=*}
  value=${pair#*=}
  if [[ $pair != *=* || ! $name =~ ^[A-Z0-9_]+$ ]]; then
    echo "fill.sh: not NAME=VALUE: $name" >&2
    exit 2
  fi
  if [[ $text != *"@@$name@@"* ]]; then
    echo "fill.sh: the template has no @@$name@@" >&2
    exit 2
  fi
  if [[ $value == @* ]]; then
    value=$(base64 -w0 "${value#@}")
  elif [[ $value == *[\"\'\\]* || $value == *$'\n'* ]]; then
    echo "fill.sh: $name: a quote, backslash or line break would break the file" >&2
    exit 2
  fi
  text=${text//"@@$name@@"/"$value"}
done
left=$(grep -o '@@[A-Z0-9_]*@@' <<<"$text" | sort -u | tr '\n' ' ' || true)
if [ -n "$left" ]; then
  echo "fill.sh: still to fill: $left" >&2
  exit 1
fi
printf '%s\n' "$text"
