from siqd.cli import main

main()
