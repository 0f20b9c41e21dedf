from kvsl.cli import main

main()
