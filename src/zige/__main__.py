from zige.cli import main

main()
