from lightning_video.console import run

run()
