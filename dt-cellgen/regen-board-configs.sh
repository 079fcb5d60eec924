#!/bin/sh
# Regenerates the board configs and demo cells in configs/ from Debian's
# DTBs, with the options docs/boards.md explains. Fetches the DTBs first if
# CELLBLOCK_DEBIAN_DTBS is not set. Run from anywhere in the repository.
set -eu
cd "$(git rev-parse --show-toplevel)"
cargo build -q -p dt-cellgen
G=./target/debug/dt-cellgen
D=${CELLBLOCK_DEBIAN_DTBS:-$($G fetch-debian-dtbs)}
$G system "$D/nvidia/tegra210-p2371-2180.dtb" --cell-mem 64M --name jetson-tx1 -o configs/jetson-tx1.toml
$G system "$D/hisilicon/hi6220-hikey.dtb" --hv-at top --cell-mem 64M --name hikey -o configs/hikey.toml
$G system "$D/hisilicon/hi3660-hikey960.dtb" --ram 0x0:0x32100000 --ram 0x32200000:0x8de00000 \
    --hv-at top --cell-mem 64M --name hikey960 -o configs/hikey960.toml
$G system "$D/rockchip/rk3399-rockpro64.dtb" --ram 0x200000:0x7fe00000 --hv-at top --cell-mem 64M \
    --name rk3399-rockpro64 -o configs/rk3399-rockpro64.toml
$G system "$D/xilinx/zynqmp-zcu102-rev1.0.dtb" --hv-at top --cell-mem 64M --name zcu102 -o configs/zcu102.toml
$G cell --system configs/jetson-tx1.toml --name demo --cpus 3 --mem 16M --ipa 0x40200000 \
    -o configs/cells/jetson-tx1-demo.toml
$G cell --system configs/hikey.toml --dtb "$D/hisilicon/hi6220-hikey.dtb" --name demo --cpus 7 \
    --mem 16M --ipa 0x40200000 --device /soc/serial@f7112000 -o configs/cells/hikey-demo.toml
$G cell --system configs/hikey960.toml --dtb "$D/hisilicon/hi3660-hikey960.dtb" --name demo --cpus 7 \
    --mem 16M --ipa 0x40200000 --device /soc/serial@fdf05000 -o configs/cells/hikey960-demo.toml
$G cell --system configs/rk3399-rockpro64.toml --name demo --cpus 5 --mem 16M --ipa 0x40200000 \
    -o configs/cells/rk3399-rockpro64-demo.toml
$G cell --system configs/zcu102.toml --dtb "$D/xilinx/zynqmp-zcu102-rev1.0.dtb" --name demo --cpus 3 \
    --mem 16M --ipa 0x40200000 --device /axi/serial@ff010000 -o configs/cells/zcu102-demo.toml
