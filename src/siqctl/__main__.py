from siqctl.main import main

main()
