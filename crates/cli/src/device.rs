//! Pick the burn backend named by `run.device`.

use nibble_train::sections::Device;

/// Run `$body` with `B` bound to the backend type of `$device` (and `dev` to its device).
/// GPU backends are available only when the binary was built with their cargo feature.
macro_rules! with_backend {
    ($device:expr, |$B:ident, $dev:ident| $body:expr) => {{
        match $device {
            nibble_train::sections::Device::Cpu => {
                type $B = burn::backend::Flex;
                let $dev = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            nibble_train::sections::Device::Cuda => {
                type $B = burn::backend::Cuda;
                let $dev = Default::default();
                $body
            }
            #[cfg(feature = "wgpu")]
            nibble_train::sections::Device::Wgpu => {
                type $B = burn::backend::Wgpu;
                let $dev = Default::default();
                $body
            }
            #[allow(unreachable_patterns)]
            other => Err((2u8, crate::device::missing(other))),
        }
    }};
}
pub(crate) use with_backend;

/// The message for a device this binary was not built for.
pub fn missing(d: Device) -> String {
    let f = match d {
        Device::Cuda => "cuda",
        Device::Wgpu => "wgpu",
        Device::Cpu => "cpu",
    };
    format!("run.device = \"{f}\" needs a binary built with `cargo build --release --features {f}`")
}
