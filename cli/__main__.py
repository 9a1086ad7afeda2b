from vid2act.cli.main import main

main()
