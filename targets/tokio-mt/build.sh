#!/bin/sh
# Build axt-tokio offline with Debian's Rust toolchain and Debian's packaged
# crates (librust-tokio-dev): a directory source under /usr/share/cargo/registry
# replaces crates.io, so nothing is downloaded. /usr/bin/cargo is called by
# its path (another cargo may be first in PATH). The crate is copied into
# build/ and built there, so the lock file, CARGO_HOME and the target
# directory all stay inside build/. Writes build/axt-tokio (last, so that
# its presence means a whole build) and build/version.txt.
set -eu
cd "$(dirname "$0")"
b="$PWD/build"
mkdir -p "$b/crate" "$b/cargo-home"
cp Cargo.toml "$b/crate/"
rm -rf "$b/crate/src" && cp -r src "$b/crate/src"
cat > "$b/cargo-home/config.toml" <<CFG
[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "/usr/share/cargo/registry"
[net]
offline = true
CFG
export CARGO_HOME="$b/cargo-home" CARGO_TARGET_DIR="$b/target" RUSTC=/usr/bin/rustc
unset RUSTUP_TOOLCHAIN
/usr/bin/cargo build --release --quiet --manifest-path "$b/crate/Cargo.toml"
# the version line for the result's environment block
tokio=$(awk '$0 == "name = \"tokio\"" { getline; gsub(/[^0-9.]/, "", $3); print $3 }' "$b/crate/Cargo.lock")
printf 'tokio %s, %s\n' "$tokio" "$(/usr/bin/rustc --version)" > "$b/version.txt"
cp "$b/target/release/axt-tokio" "$b/axt-tokio.tmp"
mv "$b/axt-tokio.tmp" "$b/axt-tokio"
