# Installed by {{if .Packaged}}the hubd package{{else}}`hubd setup`{{end}}. Members of the hub's group may restart the hub
# in place; users' running notebooks are not stopped.
alias restart-hub='{{.Binary}} restart --config {{.Config}}'
