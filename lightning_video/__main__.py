from lightning_video.cli import main

main()
