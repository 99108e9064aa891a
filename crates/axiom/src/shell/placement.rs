//! Where new windows go. The policy is deliberately simple so that tests (and
//! users) can predict it: every new toplevel is centred on the output, the
//! newest on top; a window larger than the output starts at its top-left.

use smithay::utils::{Logical, Point, Size};

pub fn centred(output: Size<i32, Logical>, window: Size<i32, Logical>) -> Point<i32, Logical> {
    let x = ((output.w - window.w) / 2).max(0);
    let y = ((output.h - window.h) / 2).max(0);
    (x, y).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_centred_and_never_off_screen() {
        assert_eq!(centred((640, 480).into(), (100, 50).into()), (270, 215).into());
        assert_eq!(centred((640, 480).into(), (101, 51).into()), (269, 214).into());
        assert_eq!(centred((640, 480).into(), (2000, 50).into()), (0, 215).into());
    }
}
