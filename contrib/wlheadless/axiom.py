#
# Axiom support for wlheadless-run and xwfb-run (the xwayland-run project):
#
#   wlheadless-run -c axiom -- CLIENT [ARGS...]
#   xwfb-run -c axiom -- X11-CLIENT [ARGS...]
#
# Install it as wlheadless/axiom.py next to the project's other compositor
# modules (weston.py, cage.py...), with `axiom` on PATH.
#
# SPDX-License-Identifier: MIT
#

""" Runs Wayland clients on a headless Axiom. """

from os import environ, getpid
from wlheadless.wlheadless_common import WlheadlessCommon
from wlheadless.xwayland import Xwayland


class Wlheadless:

    """
    Runs Wayland clients on a headless Axiom: the compositor and its clients
    are started separately, as for weston and kwin, so that the clients'
    arguments reach them untouched.
    """

    def __call__(self):
        return self


    def __init__(self):
        self.compositor_args = []
        # Headless needs no GPU (lavapipe renders); Xwayland is xwfb-run's to
        # start, rootful, so Axiom starts none of its own.
        self.compositor = [
            'axiom',
            '--backend', 'headless',
            '--no-xwayland',
        ]
        self.wlheadless_common = WlheadlessCommon()
        self.xwayland = Xwayland()


    def spawn_client(self, command_args):
        """Starts the Wayland client."""
        return self.wlheadless_common.run_command(command_args)


    def spawn_xwayland(self, xserver_args = None):
        """Starts a rootful Xwayland, filling the output."""
        xserver_args = list(xserver_args or [])
        xserver_args.append('-fullscreen')
        return self.xwayland.spawn_xwayland(xserver_args)


    def wait_compositor(self):
        """Waits until clients can connect: Axiom's socket exists only then."""
        return self.wlheadless_common.wait_compositor()


    def command_line(self, compositor_args = None):
        """The compositor's command line, listening on a socket of our own."""
        wayland_display = 'wayland-' + format(getpid())
        environ['WAYLAND_DISPLAY'] = wayland_display
        return (self.compositor + self.compositor_args + list(compositor_args or [])
                + ['--socket', wayland_display])


    def run_compositor(self, compositor_args = None):
        """Starts Axiom."""
        return self.wlheadless_common.run_compositor(self.command_line(compositor_args))
