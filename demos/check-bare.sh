#!/bin/sh
# Builds the demos and checks them bare on QEMU virt (no hypervisor):
# gic-demo on GICv3 and GICv2, with and without EL2; uart-demo's first
# lines; probe through the runtime's EL2 hypercall stub. Then gic-demo and
# gic-demo-locked with 2 GiB of RAM and a fake communication region at
# 0x8000_0000 that holds a shutdown request: bare, neither may read it, so
# both keep ticking and print no `gic-demo: shutdown` line. Last, edu-dma
# with QEMU's edu device and a disabled SMMU: its own-memory round trips
# pass, and its foreign DMA lands at both physical addresses (the QEMU
# monitor reads them back), which a hypervisor's SMMU must prevent.
# Usage: demos/check-bare.sh [SECONDS]   (run from the workspace root)
set -eu
secs=${1:-6}
out=target/demos-bare
mkdir -p "$out"
cargo build -q -p demos --release --target aarch64-unknown-none
objcopy="$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin/llvm-objcopy"
for b in gic-demo gic-demo-locked uart-demo probe edu-dma; do
    "$objcopy" -O binary "target/aarch64-unknown-none/release/$b" "$out/$b.bin"
done

fail=0
run() { # name machine-options binary [more QEMU options]
    log="$out/$1.log"
    name=$1 machine=$2 bin=$3
    shift 3
    timeout "$secs" qemu-system-aarch64 -M "$machine" -cpu cortex-a57 -smp 1 -m 1G \
        -nographic -kernel "$out/$bin.bin" "$@" >"$log" 2>&1 </dev/null || true
}
expect() { # name min-count pattern
    n=$(grep -c -- "$3" "$out/$1.log" || true)
    if [ "$n" -ge "$2" ]; then
        echo "ok   $1: $n x '$3'"
    else
        echo "FAIL $1: $n x '$3', wanted >= $2 (log: $out/$1.log)"
        fail=1
    fi
}
absent() { # name pattern
    if grep -q -- "$2" "$out/$1.log"; then
        echo "FAIL $1: unexpected '$2'"; fail=1
    else
        echo "ok   $1: no '$2'"
    fi
}

ticks=$(( (secs - 2) * 5 ))
for v in 3 2; do
    for virt in virtualization=on, ""; do
        name="gic-demo-v$v${virt:+-el2}"
        run "$name" "virt,${virt}gic-version=$v" gic-demo
        expect "$name" 1 "^Initializing the GIC (v$v)\.\.\."
        expect "$name" "$ticks" '^Timer fired, jitter: [ -]*[0-9]\{1,\} ns, min: [ -]*[0-9]\{1,\} ns, max: [ -]*[0-9]\{1,\} ns'
        absent "$name" "inmate exception"
    done
done
run uart-demo "virt,virtualization=on,gic-version=3" uart-demo
expect uart-demo "$((secs - 2))" '^Hello [0-9]* from cell!'
expect uart-demo 1 '^Hello 1 from cell!'
absent uart-demo "inmate exception"
run probe "virt,virtualization=on,gic-version=3" probe
expect probe 1 '^probe: reading 0x50000000, which this cell does not own'
# signature "CBCM", revision 1, cell_state 0, msg_to_cell 1 (shutdown
# request), reply_from_cell 0; all little endian.
printf 'CBCM\001\000\000\000\000\000\000\000\001\000\000\000\000\000\000\000' \
    >"$out/fake-comm.bin"
fake_comm="loader,file=$out/fake-comm.bin,addr=0x80000000,force-raw=on"
for case in gic-demo: gic-demo:virtualization=on, gic-demo-locked:; do
    bin=${case%%:*} virt=${case#*:}
    name="$bin-comm${virt:+-el2}"
    run "$name" "virt,${virt}gic-version=3" "$bin" -m 2G -device "$fake_comm"
    expect "$name" "$ticks" '^Timer fired, jitter: '
    absent "$name" "gic-demo: shutdown"
    absent "$name" "inmate exception"
done
# edu-dma bare: the serial console to the log, the monitor on stdin/stdout
# reads the first word at each foreign address once the probe is done.
{ sleep 4; echo "xp /1gx 0x7e000000"; echo "xp /1gx 0x40100000"; sleep 1; echo quit; } |
    timeout 15 qemu-system-aarch64 -M virt,virtualization=on,gic-version=3,iommu=smmuv3 \
        -global arm-smmuv3.stage=2 -cpu cortex-a57 -smp 1 -m 1G -display none \
        -device edu,dma_mask=0xffffffffffffffff,addr=2 -kernel "$out/edu-dma.bin" \
        -serial "file:$out/edu-dma.log" -monitor stdio >"$out/edu-dma.monitor" 2>&1 || true
expect edu-dma 1 '^edu-dma: edu at 00:02.0 (requester ID 0x0010), BAR0 0x3ee00000'
expect edu-dma 1 '^edu-dma: device id 0x010000ed, alive'
expect edu-dma 1 '^edu-dma: own memory round trip OK'
expect edu-dma 1 '^edu-dma: DMA to foreign address 0x7e000000 completed'
expect edu-dma 1 '^edu-dma: DMA to hypervisor address 0x40100000 completed'
expect edu-dma 1 '^edu-dma: own memory round trip after the foreign DMA OK'
expect edu-dma 1 '^edu-dma: done'
absent edu-dma 'FAIL'
absent edu-dma "inmate exception"
# Word 0 of the pattern.
for a in 000000007e000000 0000000040100000; do
    if grep -q "^$a: 0xedd00000ffffffff" "$out/edu-dma.monitor"; then
        echo "ok   edu-dma: pattern at 0x$a (bare: no SMMU)"
    else
        echo "FAIL edu-dma: no pattern at 0x$a (monitor: $out/edu-dma.monitor)"
        fail=1
    fi
done
exit $fail
