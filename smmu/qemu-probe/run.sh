#!/bin/sh
# Builds the probe and runs it on QEMU virt with an SMMUv3 and two edu
# devices: 00:02.0 (stream 0x10, inside the stream table) and 00:04.0
# (stream 0x20, beyond it). Passes when the probe prints its PASS line.
set -eu
cd "$(dirname "$0")"
cargo build --release --target aarch64-unknown-none-softfloat
log=target/qemu-probe.log
timeout 60 qemu-system-aarch64 \
    -M virt,virtualization=on,gic-version=3,iommu=smmuv3 \
    -global arm-smmuv3.stage=2 \
    -cpu max -m 1G -nodefaults -display none -serial stdio \
    -device edu,addr=2.0,dma_mask=0xffffffffffffffff \
    -device edu,addr=4.0,dma_mask=0xffffffffffffffff \
    -kernel target/aarch64-unknown-none-softfloat/release/smmu-qemu-probe \
    </dev/null | tee "$log"
grep -q '^smmu-probe: PASS' "$log"
