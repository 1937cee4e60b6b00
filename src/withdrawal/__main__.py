from withdrawal.cli import main

main()
