"""Start a visdom server without its download step, so it also starts offline:

    python -m util.visdom_server -port 8097 [-env_path DIR] [-hostname localhost]

Same flags as `python -m visdom.server`. The stock command first fetches the dashboard's JavaScript from a CDN and
exits when there is no internet; this one skips that. The dashboard page itself needs those scripts once: run the
stock command one time on a machine with internet (they are cached inside the visdom package), or view the plots
that training also writes to checkpoints/NAME/web/index.html.
"""
import sys


def main(argv=None):
    try:
        from visdom.server import run_server
    except ImportError:
        print("error: the visdom package is not installed (it is optional): see requirements-visdom.txt for the "
              "command that installs it", file=sys.stderr)
        sys.exit(2)
    sys.argv = ["visdom_server"] + list(sys.argv[1:] if argv is None else argv)
    run_server.main()


if __name__ == "__main__":
    main()
