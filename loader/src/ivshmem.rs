//! `cellblock ivshmem ping` and `ivshmem echo`: a Linux cell's end of an
//! ivshmem link (docs/ivshmem.md), for testing and measuring a link from
//! Linux userspace without a kernel module of ours.
//!
//! - The link (shared memory, register page, as the cell sees them) comes
//!   from the cell's device tree: the `cellblock,regs` and
//!   `cellblock,shmem` properties of its `cellblock-ivshmem-ID` node,
//!   which dt-cellgen writes into root and guest DTBs alike. In the root
//!   cell, an older DTB without them is helped out by the root cell's
//!   config as the hypervisor reports it (`cell 0`'s info).
//! - Both are mapped through `/dev/mem` (neither is RAM of the root
//!   kernel): 32-bit accesses to the registers, 64-bit ones to the
//!   protocol's slots, each a single `ldr`/`str` ([`crate::mmio`]).
//! - The peer's doorbell arrives as an interrupt that the root DTB gives a
//!   `gpio-keys` node labelled `cellblock-ivshmem-ID` (dt-cellgen adds
//!   it): each doorbell is a key press and release on that input device's
//!   `/dev/input/eventN`.
//!
//! The protocol ([`ping`] and [`echo`], host-tested against fakes): for
//! each sequence number 1..=N the initiator writes it into `msg::TO_PEER`,
//! rings, waits for the peer's doorbell (or, with `--poll`, for the slot
//! to change), and checks that `msg::FROM_PEER` holds the same number; the
//! responder (ivshmem-demo, or `ivshmem echo` in a Linux cell) checks each
//! number against the one before and copies it back.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hv_core::config::IvshmemLink;
use hv_core::ivshmem::{check_echo, msg, reg, Seen, Sequence, REGS_SIZE};
use memmap2::MmapRaw;

use crate::cli::{EchoArgs, PingArgs};
use crate::{devmem, mmio, Error};

/// One cell's end of a link, as that cell sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub id: u32,
    /// The register page.
    pub regs: u64,
    /// The shared memory and its size.
    pub shmem: u64,
    pub size: u64,
}

impl From<&IvshmemLink> for Endpoint {
    fn from(l: &IvshmemLink) -> Self {
        Endpoint {
            id: l.id,
            regs: l.regs,
            shmem: l.virt_start,
            size: l.size,
        }
    }
}

/// Big-endian 32-bit cells of a device-tree property file.
fn be_cells(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(4)
        .map(|c| u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .collect()
}

/// Link `id` from the device tree under the first of `roots` that has a
/// `cellblock-ivshmem-ID` node; `None` when none has the node with its
/// `cellblock,regs` and `cellblock,shmem` properties.
pub fn endpoint_from_dt(roots: &[&Path], id: u32) -> Result<Option<Endpoint>, Error> {
    for root in roots {
        let node = root.join(input_label(id));
        if !node.is_dir() {
            continue;
        }
        let read = |name: &str| std::fs::read(node.join(name)).ok().map(|b| be_cells(&b));
        let (Some(regs), Some(shmem)) = (read("cellblock,regs"), read("cellblock,shmem")) else {
            return Ok(None);
        };
        return match (regs.as_slice(), shmem.as_slice()) {
            ([rh, rl], [sh, sl, zh, zl]) => Ok(Some(Endpoint {
                id,
                regs: rh << 32 | rl,
                shmem: sh << 32 | sl,
                size: zh << 32 | zl,
            })),
            _ => Err(Error::new(
                node.display().to_string(),
                "cellblock,regs needs 2 cells and cellblock,shmem 4",
            )),
        };
    }
    Ok(None)
}

/// The root cell's end of a link, as [`ping`] drives it.
pub trait Peer {
    /// Writes a 64-bit slot of the shared memory.
    fn write_slot(&mut self, offset: u64, value: u64);
    /// Reads a 64-bit slot of the shared memory.
    fn read_slot(&mut self, offset: u64) -> u64;
    /// Rings the peer's doorbell.
    fn ring(&mut self);
    /// Waits up to `timeout` for the peer's doorbell; `Ok(false)` on
    /// time-out.
    fn wait_doorbell(&mut self, timeout: Duration) -> Result<bool, Error>;
}

/// How [`ping`] learns that the peer answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Wait for the peer's doorbell interrupt.
    Doorbell,
    /// Poll the answer slot (the baseline: no interrupt on the way back).
    Poll,
}

/// What a run measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub messages: u64,
    pub doorbells: u64,
    pub total_ns: u128,
    pub min_ns: u128,
    pub max_ns: u128,
    pub median_ns: u128,
}

impl Summary {
    /// The line `cellblock ivshmem ping` prints.
    pub fn line(&self, id: u32, mode: Mode) -> String {
        let avg = self.total_ns / u128::from(self.messages.max(1));
        format!(
            "ivshmem link {id}: {} messages, {} doorbells received, 0 errors, round trip ({}) avg {avg} ns, median {} ns, min {} ns, max {} ns",
            self.messages,
            self.doorbells,
            match mode {
                Mode::Doorbell => "doorbell",
                Mode::Poll => "polled",
            },
            self.median_ns,
            self.min_ns,
            self.max_ns
        )
    }
}

fn seen_word(s: Seen) -> &'static str {
    match s {
        Seen::InOrder => "in order",
        Seen::Duplicate => "duplicated",
        Seen::Lost { .. } => "lost",
        Seen::Reordered { .. } => "reordered",
    }
}

/// Runs `count` round trips on `peer`; `now` reads a clock in ns. Stops at
/// the first lost, reordered or duplicated message.
pub fn ping(
    peer: &mut dyn Peer,
    id: u32,
    count: u64,
    mode: Mode,
    timeout: Duration,
    mut now: impl FnMut() -> u128,
) -> Result<Summary, Error> {
    let what = format!("ivshmem link {id}");
    let mut sum = Summary {
        min_ns: u128::MAX,
        ..Summary::default()
    };
    let mut samples: Vec<u128> = Vec::with_capacity(count.min(1 << 20) as usize);
    peer.write_slot(msg::FROM_PEER, 0);
    for seq in 1..=count {
        let t0 = now();
        peer.write_slot(msg::TO_PEER, seq);
        peer.ring();
        let got = match mode {
            Mode::Doorbell => {
                if !peer.wait_doorbell(timeout)? {
                    return Err(Error::new(
                        what,
                        format!(
                            "message {seq}: no doorbell from the peer within {} ms (lost)",
                            timeout.as_millis()
                        ),
                    ));
                }
                sum.doorbells += 1;
                peer.read_slot(msg::FROM_PEER)
            }
            Mode::Poll => {
                let started = now();
                let limit = timeout.as_nanos();
                loop {
                    let v = peer.read_slot(msg::FROM_PEER);
                    if v != seq - 1 {
                        break v;
                    }
                    if now().saturating_sub(started) > limit {
                        return Err(Error::new(
                            what,
                            format!(
                                "message {seq}: no answer in the shared memory within {} ms (lost)",
                                timeout.as_millis()
                            ),
                        ));
                    }
                    std::hint::spin_loop();
                }
            }
        };
        let dt = now().saturating_sub(t0);
        let seen = check_echo(seq, got);
        if seen != Seen::InOrder {
            return Err(Error::new(
                what,
                format!(
                    "message {seq}: the peer answered {got}, expected {seq} ({})",
                    seen_word(seen)
                ),
            ));
        }
        sum.messages += 1;
        sum.total_ns += dt;
        sum.min_ns = sum.min_ns.min(dt);
        sum.max_ns = sum.max_ns.max(dt);
        samples.push(dt);
    }
    if sum.messages == 0 {
        sum.min_ns = 0;
    }
    samples.sort_unstable();
    sum.median_ns = samples.get(samples.len() / 2).copied().unwrap_or(0);
    Ok(sum)
}

/// The label of the root DTB's gpio-keys node for link `id`.
pub fn input_label(id: u32) -> String {
    format!("cellblock-ivshmem-{id}")
}

/// The `/dev/input/eventN` whose device is named `label`, looked up under
/// `sys_class_input` (`/sys/class/input`).
pub fn find_event_device(sys_class_input: &Path, label: &str) -> Result<PathBuf, Error> {
    let dir = std::fs::read_dir(sys_class_input).map_err(|e| Error::file(sys_class_input, e))?;
    let mut names: Vec<String> = dir
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("event"))
        .collect();
    names.sort();
    for n in names {
        let name_file = sys_class_input.join(&n).join("device").join("name");
        let Ok(name) = std::fs::read_to_string(&name_file) else {
            continue;
        };
        if name.trim() == label {
            return Ok(Path::new("/dev/input").join(n));
        }
    }
    Err(Error::new(
        sys_class_input.display().to_string(),
        format!(
            "no input device named \"{label}\" (is gpio_keys loaded and the link in the root DTB?)"
        ),
    ))
}

/// Size of `struct input_event` on 64-bit Linux.
const INPUT_EVENT_SIZE: usize = 24;
const EV_KEY: u16 = 1;

/// Key presses (EV_KEY, value 1) among the `struct input_event`s in
/// `bytes` (whole events only).
pub fn key_presses(bytes: &[u8]) -> u64 {
    bytes
        .chunks_exact(INPUT_EVENT_SIZE)
        .filter(|e| {
            let ty = u16::from_ne_bytes([e[16], e[17]]);
            let value = i32::from_ne_bytes([e[20], e[21], e[22], e[23]]);
            ty == EV_KEY && value == 1
        })
        .count() as u64
}

/// The live root end: `/dev/mem` mappings and the input device.
struct DevPeer {
    regs: MmapRaw,
    shmem: MmapRaw,
    events: Option<File>,
    /// Doorbells read from the device but not yet waited for.
    banked: u64,
}

impl DevPeer {
    fn open(link: &Endpoint, events: Option<PathBuf>) -> Result<Self, Error> {
        let dev_mem = Path::new(crate::devmem::DEV_MEM);
        let file = devmem::open_dev_mem(dev_mem)?;
        let regs = devmem::map(&file, dev_mem, link.regs, REGS_SIZE)?;
        let shmem = devmem::map(
            &file,
            dev_mem,
            link.shmem,
            msg::SIZE.max(0x1000).min(link.size),
        )?;
        let events = match events {
            Some(p) => Some(
                OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&p)
                    .map_err(|e| Error::file(&p, e))?,
            ),
            None => None,
        };
        Ok(Self {
            regs,
            shmem,
            events,
            banked: 0,
        })
    }

    fn reg(&self, offset: u64) -> *mut u32 {
        // SAFETY: `offset` is one of `reg`'s constants, inside the page.
        unsafe { self.regs.as_mut_ptr().add(offset as usize).cast::<u32>() }
    }

    fn read_reg(&self, offset: u64) -> u32 {
        // SAFETY: an aligned register of the mapped register page.
        unsafe { mmio::load32(self.reg(offset)) }
    }

    /// Reads what the input device has now; returns the key presses.
    fn drain(&mut self) -> Result<u64, Error> {
        let Some(f) = self.events.as_mut() else {
            return Ok(0);
        };
        let mut buf = [0u8; INPUT_EVENT_SIZE * 64];
        let mut presses = 0;
        loop {
            match f.read(&mut buf) {
                Ok(0) => return Ok(presses),
                Ok(n) => presses += key_presses(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(presses),
                Err(e) => return Err(Error::new("input device", e)),
            }
        }
    }
}

impl Peer for DevPeer {
    fn write_slot(&mut self, offset: u64, value: u64) {
        // SAFETY: `offset` is one of `msg`'s 8-byte aligned slots inside the
        // mapped shared memory.
        unsafe { mmio::store64(self.shmem.as_mut_ptr().add(offset as usize).cast(), value) }
    }

    fn read_slot(&mut self, offset: u64) -> u64 {
        // SAFETY: as in `write_slot`.
        unsafe { mmio::load64(self.shmem.as_mut_ptr().add(offset as usize).cast()) }
    }

    fn ring(&mut self) {
        mmio::barrier();
        // SAFETY: DOORBELL is an aligned register of the mapped page.
        unsafe { mmio::store32(self.reg(reg::DOORBELL), 1) }
    }

    fn wait_doorbell(&mut self, timeout: Duration) -> Result<bool, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.banked > 0 {
                self.banked -= 1;
                mmio::barrier();
                return Ok(true);
            }
            let fd = match &self.events {
                Some(f) => f.as_raw_fd(),
                None => return Ok(false),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd for an open descriptor.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(Error::new("poll on the input device", e));
                }
            }
            self.banked += self.drain()?;
        }
    }
}

/// The responder: for each of `count` doorbells, checks the number in
/// `msg::TO_PEER` against the one before, copies it to `msg::FROM_PEER` and
/// rings back. Stops at the first number out of sequence, or when no
/// doorbell comes within `timeout`.
pub fn echo(
    peer: &mut dyn Peer,
    id: u32,
    count: u64,
    timeout: Duration,
) -> Result<Sequence, Error> {
    let what = format!("ivshmem link {id}");
    let mut seq = Sequence::new();
    while seq.received < count {
        if !peer.wait_doorbell(timeout)? {
            return Err(Error::new(
                what,
                format!(
                    "no doorbell within {} ms after {} messages",
                    timeout.as_millis(),
                    seq.received
                ),
            ));
        }
        let before = seq.last();
        let got = peer.read_slot(msg::TO_PEER);
        let seen = seq.record(got);
        if seen != Seen::InOrder {
            return Err(Error::new(
                what,
                format!(
                    "message {} is {got} after {before} ({})",
                    seq.received,
                    seen_word(seen)
                ),
            ));
        }
        peer.write_slot(msg::FROM_PEER, got);
        peer.ring();
    }
    Ok(seq)
}

/// `cellblock ivshmem echo ID`: answers `--count` messages of the peer's
/// `ivshmem ping`; says on stderr when it is ready.
pub fn run_echo(link: &Endpoint, args: &EchoArgs) -> Result<Vec<String>, Error> {
    let events = find_event_device(Path::new("/sys/class/input"), &input_label(link.id))?;
    let mut peer = DevPeer::open(link, Some(events))?;
    let id = peer.read_reg(reg::ID);
    if id != link.id {
        return Err(Error::new(
            format!("ivshmem link {}", link.id),
            format!(
                "register page {:#x} reads id {id} (not the hypervisor's register page?)",
                link.regs
            ),
        ));
    }
    peer.drain()?;
    eprintln!(
        "ivshmem link {}: ready to echo {} messages",
        link.id, args.count
    );
    let seq = echo(
        &mut peer,
        link.id,
        args.count,
        Duration::from_millis(args.timeout_ms),
    )?;
    Ok(vec![format!(
        "ivshmem link {}: echoed {} messages, last {}, 0 errors",
        link.id,
        seq.received,
        seq.last()
    )])
}

fn now_ns(start: Instant) -> u128 {
    start.elapsed().as_nanos()
}

/// `cellblock ivshmem ping ID`: `link` is this cell's end of link ID.
pub fn run_ping(link: &Endpoint, args: &PingArgs) -> Result<Vec<String>, Error> {
    let mode = if args.poll {
        Mode::Poll
    } else {
        Mode::Doorbell
    };
    let events = match mode {
        Mode::Doorbell => Some(find_event_device(
            Path::new("/sys/class/input"),
            &input_label(link.id),
        )?),
        Mode::Poll => None,
    };
    let mut peer = DevPeer::open(link, events)?;
    let what = format!("ivshmem link {}", link.id);
    let id = peer.read_reg(reg::ID);
    if id != link.id {
        return Err(Error::new(
            what,
            format!(
                "register page {:#x} reads id {id} (not the hypervisor's register page?)",
                link.regs
            ),
        ));
    }
    if peer.read_reg(reg::PEER) != 1 {
        return Err(Error::new(what, "the peer cell is not running"));
    }
    // Doorbells from before this run do not count.
    peer.drain()?;
    let start = Instant::now();
    let sum = ping(
        &mut peer,
        link.id,
        args.count,
        mode,
        Duration::from_millis(args.timeout_ms),
        || now_ns(start),
    )?;
    Ok(vec![sum.line(link.id, mode)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::scratch;

    /// A peer that answers each ring at once, with faults on request.
    #[derive(Default)]
    struct Echo {
        to_peer: u64,
        from_peer: u64,
        rung: u64,
        pending: u64,
        /// Ring number whose answer is dropped.
        drop_at: Option<u64>,
        /// Ring number answered with the previous number.
        stale_at: Option<u64>,
        /// Ring number answered with 1 (an old message).
        old_at: Option<u64>,
    }

    impl Peer for Echo {
        fn write_slot(&mut self, offset: u64, value: u64) {
            match offset {
                msg::TO_PEER => self.to_peer = value,
                _ => self.from_peer = value,
            }
        }
        fn read_slot(&mut self, offset: u64) -> u64 {
            match offset {
                msg::TO_PEER => self.to_peer,
                _ => self.from_peer,
            }
        }
        fn ring(&mut self) {
            self.rung += 1;
            if self.drop_at == Some(self.rung) {
                return;
            }
            self.from_peer = if self.stale_at == Some(self.rung) {
                self.to_peer - 1
            } else if self.old_at == Some(self.rung) {
                1
            } else {
                self.to_peer
            };
            self.pending += 1;
        }
        fn wait_doorbell(&mut self, _: Duration) -> Result<bool, Error> {
            if self.pending == 0 {
                return Ok(false);
            }
            self.pending -= 1;
            Ok(true)
        }
    }

    fn clock() -> impl FnMut() -> u128 {
        let mut t = 0;
        move || {
            t += 100;
            t
        }
    }

    fn run(peer: &mut Echo, mode: Mode) -> Result<Summary, Error> {
        ping(peer, 0, 50, mode, Duration::from_millis(5), clock())
    }

    fn message(r: Result<Summary, Error>) -> String {
        r.unwrap_err().lines().collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn all_messages_come_back() {
        let mut p = Echo::default();
        let s = run(&mut p, Mode::Doorbell).unwrap();
        assert_eq!((s.messages, s.doorbells), (50, 50));
        assert_eq!(s.total_ns, 50 * 100);
        assert_eq!(
            s.line(0, Mode::Doorbell),
            "ivshmem link 0: 50 messages, 50 doorbells received, 0 errors, round trip (doorbell) avg 100 ns, median 100 ns, min 100 ns, max 100 ns"
        );
        let mut p = Echo::default();
        let s = run(&mut p, Mode::Poll).unwrap();
        assert_eq!((s.messages, s.doorbells), (50, 0));
    }

    #[test]
    fn lost_duplicated_reordered() {
        let mut p = Echo {
            drop_at: Some(7),
            ..Echo::default()
        };
        assert_eq!(
            message(run(&mut p, Mode::Doorbell)),
            "ivshmem link 0: message 7: no doorbell from the peer within 5 ms (lost)"
        );
        let mut p = Echo {
            drop_at: Some(7),
            ..Echo::default()
        };
        assert_eq!(
            message(run(&mut p, Mode::Poll)),
            "ivshmem link 0: message 7: no answer in the shared memory within 5 ms (lost)"
        );
        let mut p = Echo {
            stale_at: Some(9),
            ..Echo::default()
        };
        assert_eq!(
            message(run(&mut p, Mode::Doorbell)),
            "ivshmem link 0: message 9: the peer answered 8, expected 9 (duplicated)"
        );
        let mut p = Echo {
            old_at: Some(12),
            ..Echo::default()
        };
        assert_eq!(
            message(run(&mut p, Mode::Doorbell)),
            "ivshmem link 0: message 12: the peer answered 1, expected 12 (reordered)"
        );
    }

    #[test]
    fn input_events_and_device_lookup() {
        let mut bytes = Vec::new();
        for (ty, code, value) in [(1u16, 0x100u16, 1i32), (0, 0, 0), (1, 0x100, 0), (0, 0, 0)] {
            bytes.extend_from_slice(&[0u8; 16]);
            bytes.extend_from_slice(&ty.to_ne_bytes());
            bytes.extend_from_slice(&code.to_ne_bytes());
            bytes.extend_from_slice(&value.to_ne_bytes());
        }
        assert_eq!(key_presses(&bytes), 1);
        assert_eq!(key_presses(&bytes[..30]), 1);

        let dir = scratch("ivshmem-input");
        for (ev, name) in [("event0", "gpio-keys"), ("event3", "cellblock-ivshmem-0")] {
            std::fs::create_dir_all(dir.join(ev).join("device")).unwrap();
            std::fs::write(dir.join(ev).join("device/name"), format!("{name}\n")).unwrap();
        }
        assert_eq!(
            find_event_device(&dir, &input_label(0)).unwrap(),
            Path::new("/dev/input/event3")
        );
        let e = find_event_device(&dir, &input_label(1)).unwrap_err();
        assert!(e
            .lines()
            .next()
            .unwrap()
            .contains("no input device named \"cellblock-ivshmem-1\""));
    }

    /// The initiator at the other end: each wait delivers its next number.
    #[derive(Default)]
    struct Pinger {
        next: Vec<u64>,
        to_peer: u64,
        from_peer: u64,
        rings: u64,
    }

    impl Peer for Pinger {
        fn write_slot(&mut self, offset: u64, value: u64) {
            if offset == msg::FROM_PEER {
                self.from_peer = value;
            }
        }

        fn read_slot(&mut self, offset: u64) -> u64 {
            if offset == msg::TO_PEER {
                self.to_peer
            } else {
                self.from_peer
            }
        }

        fn ring(&mut self) {
            self.rings += 1;
        }

        fn wait_doorbell(&mut self, _: Duration) -> Result<bool, Error> {
            if self.next.is_empty() {
                return Ok(false);
            }
            self.to_peer = self.next.remove(0);
            Ok(true)
        }
    }

    fn echoed(next: &[u64], count: u64) -> (Result<Sequence, Error>, Pinger) {
        let mut p = Pinger {
            next: next.to_vec(),
            ..Pinger::default()
        };
        let r = echo(&mut p, 1, count, Duration::from_millis(5));
        (r, p)
    }

    #[test]
    fn echo_answers_each_number_and_stops_at_the_first_bad_one() {
        let (r, p) = echoed(&[1, 2, 3], 3);
        let seq = r.unwrap();
        assert_eq!((seq.received, seq.last(), seq.errors), (3, 3, 0));
        assert_eq!((p.from_peer, p.rings), (3, 3));
        // A new run (1 again) is in order.
        assert!(echoed(&[1, 2, 1, 2], 4).0.is_ok());
        for (next, word) in [
            (&[1, 2, 2][..], "duplicated"),
            (&[1, 3][..], "lost"),
            (&[1, 2, 3, 2][..], "reordered"),
        ] {
            let (r, p) = echoed(next, 10);
            let e = message(r.map(|_| Summary::default()));
            assert!(e.contains(word), "{next:?}: {e}");
            // Nothing is echoed for the bad number.
            assert_eq!(p.rings, next.len() as u64 - 1, "{next:?}");
        }
        let e = message(echoed(&[1], 2).0.map(|_| Summary::default()));
        assert!(
            e.contains("no doorbell within 5 ms after 1 messages"),
            "{e}"
        );
    }

    #[test]
    fn endpoint_from_the_device_tree() {
        let dir = scratch("ivshmem-dt");
        let node = dir.join("cellblock-ivshmem-1");
        std::fs::create_dir_all(&node).unwrap();
        let cells = |v: &[u32]| v.iter().flat_map(|c| c.to_be_bytes()).collect::<Vec<u8>>();
        std::fs::write(node.join("cellblock,regs"), cells(&[0, 0x0c00_0000])).unwrap();
        std::fs::write(
            node.join("cellblock,shmem"),
            cells(&[0, 0x7ed0_0000, 0, 0x10_0000]),
        )
        .unwrap();
        let missing = dir.join("nothing-here");
        let roots = [missing.as_path(), dir.as_path()];
        assert_eq!(
            endpoint_from_dt(&roots, 1).unwrap(),
            Some(Endpoint {
                id: 1,
                regs: 0x0c00_0000,
                shmem: 0x7ed0_0000,
                size: 0x10_0000
            })
        );
        assert_eq!(endpoint_from_dt(&roots, 2).unwrap(), None);
        // A node without the properties (an older DTB): not from here.
        std::fs::create_dir_all(dir.join("cellblock-ivshmem-3")).unwrap();
        assert_eq!(endpoint_from_dt(&roots, 3).unwrap(), None);
        std::fs::write(node.join("cellblock,shmem"), cells(&[1])).unwrap();
        let e = endpoint_from_dt(&roots, 1).unwrap_err();
        assert!(e.to_string().contains("needs 2 cells"), "{e}");
    }
}
